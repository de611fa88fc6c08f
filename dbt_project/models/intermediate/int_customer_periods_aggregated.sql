{#- One row per grain x customer x period in which the customer bought: the activity
    spine every period and cohort mart is built on. Set-based, so it stays fast at
    millions of orders (no customer x day rows). Incremental (macros/incremental.sql):
    a night recomputes only the changed customers' periods. -#}
{{ config(
    materialized=by_customer_materialization(),
    incremental_strategy='replace_changed_customers',
    on_schema_change='fail',
) }}
{%- set grains = period_grains() -%}

with

completed_orders as (

    select customer_id, order_date, amount
    from {{ ref('int_orders_numbered') }}
    where is_completed and {{ changed_customers_only('customer_id') }}

),

aggregated as (

    {%- for grain in grains %}
    select
        '{{ grain }}' as grain,
        customer_id,
        {{ period_start(grain, 'order_date') }} as period_start,
        count(*) as orders,
        sum(amount) as revenue

    from completed_orders
    group by customer_id, {{ period_start(grain, 'order_date') }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}

),

{#- The cohort is the period of the first completed order: a join on one row per
    customer, cheaper than a window over every customer period. #}
final as (

    select
        aggregated.*,
        case aggregated.grain
            {%- for grain in grains %}
            when '{{ grain }}' then customers.cohort_{{ grain }}
            {%- endfor %}
        end as cohort_start

    from aggregated
    inner join {{ ref('int_customers_acquired') }} as customers
        on aggregated.customer_id = customers.customer_id

)

select * from final
