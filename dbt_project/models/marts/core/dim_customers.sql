with

completed_orders as (

    select customer_id, ordered_at, amount, cohort_month
    from {{ ref('int_orders_numbered') }}
    where is_completed

),

customers as (

    select
        customer_id,
        min(ordered_at) as first_order_at,
        any_value(cohort_month) as cohort_month,
        max(ordered_at) as last_order_at,
        count(*) as completed_orders,
        sum(amount) as historic_revenue

    from completed_orders
    group by customer_id

),

final as (

    select * from customers

)

select * from final
