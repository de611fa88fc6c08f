{#- One row per line item of an order placed on or before the as-of date, with the
    order's customer, date, status and whether it is the customer's first order. A line
    has no date or customer of its own: lines of an order after the as-of date wait
    for it, and lines of an order never delivered are left out (the raw suite
    order_lines warns about them before the build). Incremental
    (macros/incremental.sql): a night replaces only the changed customers' lines. -#}
{{ config(
    materialized=by_customer_materialization(),
    incremental_strategy='replace_changed_customers',
    on_schema_change='fail',
) }}
with

lines as (

    select * from {{ ref('stg_raw__order_lines') }}

),

orders as (

    select order_id, customer_id, order_date, is_first_order, status
    from {{ ref('int_orders_numbered') }}
    where {{ changed_customers_only('customer_id') }}

),

final as (

    select
        lines.order_id,
        lines.line_number,
        orders.customer_id,
        orders.order_date,
        orders.is_first_order,
        orders.status,
        lines.product_id,
        lines.product_name,
        lines.category,
        lines.vendor,
        lines.quantity,
        {{ money('lines.unit_price') }} as unit_price,
        {{ money('lines.line_amount') }} as line_amount,
        {{ money('lines.discount_amount') }} as discount_amount

    from lines
    inner join orders on lines.order_id = orders.order_id

)

select * from final
{{ published_order(['order_id', 'line_number']) }}
