with

source as (

    select * from {{ source('raw', 'orders') }}

),

renamed as (

    select
        order_id,
        customer_id,
        ordered_at,
        cast({{ to_reporting_time('ordered_at') }} as date) as order_date,
        amount,
        status,
        currency,
        channel,
        country,
        discount_amount,
        shipping_amount,
        tax_amount,
        refunded_amount,
        _file_name as source_file_name,
        _line_number as source_line_number

    from source

),

final as (

    select * from renamed
    where order_date <= {{ as_of_date() }}

)

select * from final
