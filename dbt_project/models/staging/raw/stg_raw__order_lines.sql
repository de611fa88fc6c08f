with

source as (

    select * from {{ source('raw', 'order_lines') }}

),

final as (

    -- No date filter here: a line has no date of its own. The marts join the order
    -- (stg_raw__orders, fct_orders) for it, which also leaves out orders after the
    -- as-of date and lines whose order is not (yet) delivered.
    select
        order_id,
        line_number,
        product_id,
        product_name,
        category,
        vendor,
        quantity,
        unit_price,
        line_amount,
        discount_amount,
        currency,
        _file_name as source_file_name,
        _line_number as source_line_number

    from source

)

select * from final
