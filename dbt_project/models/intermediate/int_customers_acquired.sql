{#- One row per customer with at least one completed order: the customer's first
    completed order, the acquisition cohorts it sets, the first order's channel, country
    and main product. The one place these facts are computed; every model that needs a
    customer's first order or cohort refs this one. Incremental
    (macros/incremental.sql): a night recomputes only the changed customers. -#}
{{ config(
    materialized=by_customer_materialization(),
    incremental_strategy='replace_changed_customers',
    on_schema_change='fail',
) }}
with

completed_orders as (

    select customer_id, order_id, ordered_at, order_date, channel, country, customer_order_number
    from {{ ref('int_orders_numbered') }}
    where is_completed and {{ changed_customers_only('customer_id') }}

),

customers as (

    select
        customer_id,
        min(ordered_at) as first_order_at,
        min(order_date) as first_order_date,
        any_value(order_id) filter (where customer_order_number = 1) as first_order_id,
        any_value(channel) filter (where customer_order_number = 1) as acquisition_channel,
        any_value(country) filter (where customer_order_number = 1) as first_order_country

    from completed_orders
    group by customer_id

),

{#- The first order's main product: its largest line by line_amount, ties to the lowest
    line_number. A first order without lines has none (NULL). #}
first_products as (

    select
        order_id,
        product_id as first_product_id,
        category as first_product_category

    from (
        select
            order_id,
            product_id,
            category,
            row_number() over (
                partition by order_id order by line_amount desc, line_number
            ) as line_rank

        from {{ ref('stg_raw__order_lines') }}
        where order_id in (select first_order_id from customers)
    ) as ranked_lines
    where line_rank = 1

),

final as (

    select
        customers.customer_id,
        customers.first_order_id,
        customers.first_order_at,
        customers.first_order_date,
        customers.acquisition_channel,
        customers.first_order_country,
        first_products.first_product_id,
        first_products.first_product_category,
        {%- for grain in ['week', 'month', 'quarter', 'year'] %}
        {{ period_start(grain, 'first_order_date') }} as cohort_{{ grain }}{{ ',' if not loop.last }}
        {%- endfor %}

    from customers
    left join first_products on customers.first_order_id = first_products.order_id

)

select * from final
