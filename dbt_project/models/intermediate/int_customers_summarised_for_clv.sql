{#- One row per customer with at least one completed order: the inputs of every CLV
    definition as of the run's as-of date. The BTYD inputs follow the literature (and
    lifetimes' summary_data_from_transaction_data at day level): purchases are counted
    per distinct purchase day, so two orders on one day are one purchase. -#}
with

completed_orders as (

    select customer_id, order_date, amount
    from {{ ref('int_orders_numbered') }}
    where is_completed

),

purchase_days as (

    select
        customer_id,
        order_date,
        count(*) as orders,
        sum(amount) as revenue

    from completed_orders
    group by customer_id, order_date

),

customers as (

    select
        customer_id,
        max(order_date) as last_order_date,
        count(*) as purchase_days,
        cast(sum(orders) as bigint) as completed_orders,
        sum(revenue) as historic_revenue,
        arg_min(revenue, order_date) as first_purchase_day_revenue,
        cast(coalesce(sum(orders) filter (
            where order_date > {{ dbt.dateadd('day', -365, as_of_date()) }}
        ), 0) as bigint) as orders_365d,
        coalesce(sum(revenue) filter (
            where order_date > {{ dbt.dateadd('day', -365, as_of_date()) }}
        ), 0) as revenue_365d

    from purchase_days
    group by customer_id

),

final as (

    select
        customers.customer_id,
        acquired.first_order_date,
        customers.last_order_date,
        completed_orders,
        historic_revenue,
        orders_365d,
        revenue_365d,
        {{ btyd_inputs(
            'acquired.first_order_date', 'customers.last_order_date', as_of_date(),
            'purchase_days', 'historic_revenue', 'first_purchase_day_revenue'
        ) }},
        {{ as_of_date() }} as as_of_date

    from customers
    inner join {{ ref('int_customers_acquired') }} as acquired
        on customers.customer_id = acquired.customer_id

)

select * from final
