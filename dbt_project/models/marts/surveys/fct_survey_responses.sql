{#- One row per survey response, with the NPS bucket and the responding customer's
    lifecycle stage on the day they answered (from their completed orders up to and
    including that day; empty when they had not bought yet or are unknown).
    Incremental (macros/incremental.sql): a night replaces only the changed customers'
    responses (those without a customer are one group). -#}
{{ config(
    materialized=by_customer_materialization(),
    incremental_strategy='replace_changed_customers',
    on_schema_change='fail',
) }}

with

responses as (

    select * from {{ ref('stg_raw__survey_responses') }}
    where {{ changed_customers_only('customer_id') }}

),

purchase_days as (

    select distinct customer_id, order_date
    from {{ ref('int_orders_numbered') }}
    where is_completed and {{ changed_customers_only('customer_id') }}

),

customers as (

    select customer_id, first_order_date, cohort_month
    from {{ ref('int_customers_acquired') }}
    where {{ changed_customers_only('customer_id') }}

),

{#- The last purchase on or before the response day (an as-of join, as a join of the
    response's customer's earlier purchase days and their latest). #}
last_purchases as (

    select
        responses.response_id,
        max(purchase_days.order_date) as last_order_date

    from responses
    inner join purchase_days
        on responses.customer_id = purchase_days.customer_id
        and responses.response_date >= purchase_days.order_date
    group by responses.response_id

),

with_last_purchase as (

    select
        responses.*,
        last_purchases.last_order_date

    from responses
    left join last_purchases on responses.response_id = last_purchases.response_id

),

final as (

    select
        with_last_purchase.response_id,
        with_last_purchase.customer_id,
        with_last_purchase.responded_at,
        with_last_purchase.response_date,
        with_last_purchase.nps_score,
        {{ nps_category('with_last_purchase.nps_score') }} as nps_category,
        with_last_purchase.csat_score,
        with_last_purchase.ces_score,
        with_last_purchase.comment,
        with_last_purchase.channel,
        case
            when with_last_purchase.last_order_date is not null then {{ lifecycle_stage(
                dbt.datediff('with_last_purchase.last_order_date', 'with_last_purchase.response_date', 'day'),
                dbt.datediff('customers.first_order_date', 'with_last_purchase.response_date', 'day')
            ) }}
        end as customer_lifecycle_stage_at_response,
        customers.cohort_month as customer_cohort_month

    from with_last_purchase
    left join customers on with_last_purchase.customer_id = customers.customer_id

)

select * from final
{{ published_order(['response_id']) }}
