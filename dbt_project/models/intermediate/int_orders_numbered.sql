with

orders as (

    select * from {{ ref('stg_landing__orders') }}

),

numbered as (

    select
        *,
        status = 'completed' as is_completed,
        case
            when status = 'completed' then row_number() over (
                partition by customer_id, status = 'completed'
                order by ordered_at, order_id
            )
        end as customer_order_number

    from orders

),

first_orders as (

    select
        customer_id,
        min(order_date) as first_order_date

    from numbered
    where is_completed
    group by customer_id

),

final as (

    select
        numbered.*,
        coalesce(numbered.customer_order_number = 1, false) as is_first_order,
        {{ period_start('month', 'first_orders.first_order_date') }} as cohort_month

    from numbered
    left join first_orders on numbered.customer_id = first_orders.customer_id

)

select * from final
