{#- One row per customer with at least one completed order: the customer's first
    completed order and the acquisition cohorts it sets. The one place these facts are
    computed; every model that needs a customer's first order or cohort refs this one. -#}
with

completed_orders as (

    select customer_id, order_id, ordered_at, order_date, channel, customer_order_number
    from {{ ref('int_orders_numbered') }}
    where is_completed

),

customers as (

    select
        customer_id,
        min(ordered_at) as first_order_at,
        min(order_date) as first_order_date,
        any_value(order_id) filter (where customer_order_number = 1) as first_order_id,
        any_value(channel) filter (where customer_order_number = 1) as acquisition_channel

    from completed_orders
    group by customer_id

),

final as (

    select
        customer_id,
        first_order_id,
        first_order_at,
        first_order_date,
        acquisition_channel,
        {%- for grain in ['week', 'month', 'quarter', 'year'] %}
        {{ period_start(grain, 'first_order_date') }} as cohort_{{ grain }}{{ ',' if not loop.last }}
        {%- endfor %}

    from customers

)

select * from final
