{#- What customers said against what they did: one row per NPS category of the
    customer's latest scored response, plus no_response for customers who never gave
    a score. -#}
{%- set retention_days = var('survey_retention_days') -%}

with

customers as (

    select
        customer_id,
        lifecycle_stage,
        latest_nps_category,
        latest_nps_at

    from {{ ref('dim_customers') }}

),

customer_clv as (

    select customer_id, historic_clv, clv_12m
    from {{ ref('customer_clv') }}

),

completed_orders as (

    select customer_id, ordered_at, order_date
    from {{ ref('int_orders_numbered') }}
    where is_completed

),

scored_responses as (

    select customer_id, response_id, responded_at, response_date, nps_category
    from {{ ref('fct_survey_responses') }}
    where nps_category is not null and customer_id is not null

),

{#- Retention after a response can only be judged once its whole window has passed:
    each customer's latest scored response at least survey_retention_days before the
    as-of date decides their category here. #}
retention_anchors as (

    select
        customer_id,
        {#- the category of the latest response (ties: the later response id) #}
        max_by(nps_category, {{ row_value(['responded_at', 'response_id']) }}) as nps_category,
        max(response_date) as response_date

    from scored_responses
    where response_date <= cast({{ dbt.dateadd('day', -retention_days, as_of_date()) }} as date)
    group by customer_id

),

retention_outcomes as (

    select
        retention_anchors.nps_category,
        retention_anchors.customer_id,
        count(completed_orders.customer_id) > 0 as purchased_within_window

    from retention_anchors
    inner join customers on retention_anchors.customer_id = customers.customer_id
    left join completed_orders
        on retention_anchors.customer_id = completed_orders.customer_id
        and completed_orders.order_date > retention_anchors.response_date
        and completed_orders.order_date <= cast({{ dbt.dateadd('day', retention_days, 'retention_anchors.response_date') }} as date)
    group by retention_anchors.nps_category, retention_anchors.customer_id

),

retention_by_category as (

    select
        nps_category,
        count(*) as retention_365d_customers,
        {{ pct('100.0 * count(*) filter (where purchased_within_window) / count(*)') }}
            as retention_365d_pct

    from retention_outcomes
    group by nps_category

),

orders_after_latest_response as (

    select
        customers.customer_id,
        count(completed_orders.customer_id) as orders_after_response

    from customers
    left join completed_orders
        on customers.customer_id = completed_orders.customer_id
        and completed_orders.ordered_at > customers.latest_nps_at
    where customers.latest_nps_at is not null
    group by customers.customer_id

),

by_category as (

    select
        coalesce(customers.latest_nps_category, 'no_response') as nps_category,
        count(*) as customers,
        count(*) filter (where customers.lifecycle_stage = 'churned') as churned_customers,
        {{ money(money_mean('customer_clv.historic_clv')) }} as avg_historic_clv,
        {{ money(money_mean('customer_clv.clv_12m')) }} as avg_clv_12m,
        {{ quantity('avg(orders_after_latest_response.orders_after_response)') }}
            as avg_orders_after_response

    from customers
    left join customer_clv on customers.customer_id = customer_clv.customer_id
    left join orders_after_latest_response
        on customers.customer_id = orders_after_latest_response.customer_id
    group by coalesce(customers.latest_nps_category, 'no_response')

),

categories as (

    select * from (
        values ('promoter', 1), ('passive', 2), ('detractor', 3), ('no_response', 4)
    ) as categories (nps_category, sort_order)

),

final as (

    select
        categories.nps_category,
        categories.sort_order,
        coalesce(by_category.customers, 0) as customers,
        coalesce(by_category.churned_customers, 0) as churned_customers,
        case
            when by_category.customers > 0
                then {{ pct('100.0 * by_category.churned_customers / by_category.customers') }}
        end as churn_rate_pct,
        coalesce(retention_by_category.retention_365d_customers, 0) as retention_365d_customers,
        retention_by_category.retention_365d_pct,
        by_category.avg_historic_clv,
        by_category.avg_clv_12m,
        by_category.avg_orders_after_response

    from categories
    left join by_category on categories.nps_category = by_category.nps_category
    left join retention_by_category on categories.nps_category = retention_by_category.nps_category

)

select * from final
{{ published_order() }}
