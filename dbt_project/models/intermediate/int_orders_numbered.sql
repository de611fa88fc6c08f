{#- One row per order with its number among the customer's completed orders.
    Incremental (macros/incremental.sql): a night renumbers only the changed customers'
    orders. -#}
{{ config(
    materialized=by_customer_materialization(),
    incremental_strategy='replace_changed_customers',
    on_schema_change='fail',
) }}

with

orders as (

    select * from {{ ref('stg_raw__orders') }}
    where {{ changed_customers_only('customer_id') }}

),

numbered as (

    select
        *,
        status = 'completed' as is_completed,
        case
            {#- a bigint in every engine (Spark's row_number is an int) #}
            when status = 'completed' then cast(row_number() over (
                partition by customer_id, status = 'completed'
                order by ordered_at, order_id
            ) as bigint)
        end as customer_order_number

    from orders

),

final as (

    select
        *,
        coalesce(customer_order_number = 1, false) as is_first_order

    from numbered

)

select * from final
