{#- Incremental (macros/incremental.sql): a night replaces only the changed
    customers' orders. -#}
{{ config(
    materialized=by_customer_materialization(),
    incremental_strategy='replace_changed_customers',
    on_schema_change='fail',
) }}

with

orders as (

    select * from {{ ref('int_orders_numbered') }}
    where {{ changed_customers_only('customer_id') }}

),

customers as (

    select customer_id, cohort_month
    from {{ ref('int_customers_acquired') }}
    where {{ changed_customers_only('customer_id') }}

),

final as (

    select
        orders.order_id,
        orders.customer_id,
        orders.ordered_at,
        orders.order_date,
        orders.amount,
        orders.status,
        orders.channel,
        orders.country,
        orders.is_first_order,
        orders.customer_order_number,
        customers.cohort_month

    from orders
    left join customers on orders.customer_id = customers.customer_id

)

select * from final
{{ published_order(['order_id']) }}
