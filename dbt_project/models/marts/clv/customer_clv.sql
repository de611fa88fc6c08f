{#- One row per customer: every CLV definition side by side (docs/metrics.md, "Customer
    lifetime value"). -#}
{%- set max_lifetime_years = var('max_lifetime_years') -%}
{%- set clv_lifetime_years = var('clv_lifetime_years', none) -%}

with

customers as (

    select * from {{ ref('int_customers_summarised_for_clv') }}

),

predictions as (

    select * from {{ ref('int_customers_predicted_by_btyd') }}

),

{#- The annual churn rate of the latest complete year that had customers at its start. #}
latest_complete_year as (

    select churn_rate_pct
    from {{ ref('int_periods_retention_counted') }}
    where grain = 'year' and is_complete and churn_rate_pct is not null
    order by period_start desc
    limit 1

),

lifetime as (

    select
        {%- if clv_lifetime_years is not none %}
        {{ quantity(clv_lifetime_years) }} as expected_lifetime_years
        {%- else %}
        (
            select
                {{ quantity('case
                    when churn_rate_pct = 0 then cast(' ~ max_lifetime_years ~ ' as double)
                    else least(' ~ max_lifetime_years ~ ', 100.0 / churn_rate_pct)
                end') }}
            from latest_complete_year
        ) as expected_lifetime_years
        {%- endif %}

),

valued as (

    select
        customers.customer_id,
        {{ money('customers.historic_revenue') }} as historic_clv,
        {{ money('customers.revenue_365d') }} as annual_value,
        {{ money('20 * customers.revenue_365d') }} as clv_rule_of_20,
        customers.orders_365d as purchases_per_year,
        lifetime.expected_lifetime_years,
        {{ money('customers.orders_365d * ('
            ~ money_per('customers.historic_revenue', 'customers.completed_orders')
            ~ ') * lifetime.expected_lifetime_years') }} as clv_simple,
        customers.frequency,
        customers.recency_days,
        customers.t_days,
        {{ money('customers.monetary_value') }} as monetary_value,
        {{ quantity('predictions.p_alive') }} as p_alive,
        {{ quantity('predictions.expected_purchases_30d') }} as expected_purchases_30d,
        {{ quantity('predictions.expected_purchases_90d') }} as expected_purchases_90d,
        {{ quantity('predictions.expected_purchases_365d') }} as expected_purchases_365d,
        {{ money('predictions.expected_avg_order_value') }} as expected_avg_order_value,
        {{ money('predictions.clv_12m') }} as clv_12m,
        {{ quantity('predictions.expected_purchases_365d_low') }} as expected_purchases_365d_low,
        {{ quantity('predictions.expected_purchases_365d_high') }} as expected_purchases_365d_high,
        {{ money('predictions.clv_12m_low') }} as clv_12m_low,
        {{ money('predictions.clv_12m_high') }} as clv_12m_high

    from customers
    cross join lifetime
    left join predictions on customers.customer_id = predictions.customer_id

),

final as (

    select
        *,
        {#- ranked on the published (rounded) clv_12m: equal cents, equal percentile #}
        case
            when clv_12m is not null then {{ pct('100 * percent_rank() over (
                partition by clv_12m is null order by clv_12m
            )') }}
        end as clv_percentile

    from valued

)

select * from final
{{ published_order(['customer_id']) }}
