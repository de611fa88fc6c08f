with

orders as (

    select * from {{ ref('int_orders_numbered') }}

),

final as (

    select
        order_id,
        customer_id,
        ordered_at,
        order_date,
        amount,
        status,
        channel,
        country,
        is_first_order,
        customer_order_number,
        cohort_month

    from orders

)

select * from final
{{ published_order() }}
