{#- One row per customer: every CLV definition side by side (METRICS.md, "Customer
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
    from {{ ref('retention_by_period') }}
    where grain = 'year' and is_complete and churn_rate_pct is not null
    order by period_start desc
    limit 1

),

lifetime as (

    select
        {%- if clv_lifetime_years is not none %}
        cast({{ clv_lifetime_years }} as double) as expected_lifetime_years
        {%- else %}
        (
            select
                case
                    when churn_rate_pct = 0 then cast({{ max_lifetime_years }} as double)
                    else least({{ max_lifetime_years }}, 100.0 / churn_rate_pct)
                end
            from latest_complete_year
        ) as expected_lifetime_years
        {%- endif %}

),

valued as (

    select
        customers.customer_id,
        customers.historic_revenue as historic_clv,
        customers.revenue_365d as annual_value,
        20 * customers.revenue_365d as clv_rule_of_20,
        customers.orders_365d as purchases_per_year,
        lifetime.expected_lifetime_years,
        customers.orders_365d
            * (cast(customers.historic_revenue as double) / customers.completed_orders)
            * lifetime.expected_lifetime_years as clv_simple,
        customers.frequency,
        customers.recency_days,
        customers.t_days,
        customers.monetary_value,
        predictions.p_alive,
        predictions.expected_purchases_30d,
        predictions.expected_purchases_90d,
        predictions.expected_purchases_365d,
        predictions.expected_avg_order_value,
        predictions.clv_12m

    from customers
    cross join lifetime
    left join predictions on customers.customer_id = predictions.customer_id

),

final as (

    select
        *,
        case
            when clv_12m is not null then 100 * percent_rank() over (
                partition by clv_12m is null order by clv_12m
            )
        end as clv_percentile

    from valued

)

select * from final
