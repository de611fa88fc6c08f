{%- set grains = period_grains() -%}

with

period_counts as (

    select * from {{ ref('int_periods_retention_counted') }}

),

customer_periods as (

    select grain, period_start, cohort_start, orders, revenue
    from {{ ref('int_customer_periods_aggregated') }}

),

survey_scores as (

    select grain, period_start, responses, nps, csat_pct, ces_avg
    from {{ ref('nps_by_period') }}
    where dimension = 'overall'

),

{#- Predicted 12-month CLV is a prediction as of the as-of date: it describes only the
    period that contains that date. #}
customer_clv as (

    select {{ money(money_mean('clv_12m')) }} as avg_clv_12m
    from {{ ref('customer_clv') }}

),

{#- First and second completed orders: acquisitions (with their channel) and the
    moment a customer becomes a repeat customer. #}
milestone_orders as (

    select order_date, channel, customer_order_number
    from {{ ref('int_orders_numbered') }}
    where customer_order_number in (1, 2)

),

purchases as (

    select
        grain,
        period_start,
        count(*) as purchasing_customers,
        cast(sum(orders) as bigint) as orders,
        {{ money('sum(revenue)') }} as revenue,
        {#- New: acquired in the period (its cohort); returning: acquired before it. #}
        count(*) filter (where cohort_start < period_start) as returning_customers,
        cast(coalesce(sum(orders) filter (where cohort_start = period_start), 0) as bigint)
            as new_customer_orders,
        cast(coalesce(sum(orders) filter (where cohort_start < period_start), 0) as bigint)
            as returning_customer_orders,
        {{ money('coalesce(sum(revenue) filter (where cohort_start = period_start), 0)') }}
            as new_customer_revenue,
        {{ money('coalesce(sum(revenue) filter (where cohort_start < period_start), 0)') }}
            as returning_customer_revenue

    from customer_periods
    group by grain, period_start

),

milestones as (

    {%- for grain in grains %}
    select
        '{{ grain }}' as grain,
        {{ period_start(grain, 'order_date') }} as period_start,
        count(*) filter (where customer_order_number = 1) as new_customers,
        count(channel) filter (where customer_order_number = 1) as new_customers_with_channel,
        count(*) filter (where customer_order_number = 1 and channel = 'referral')
            as referred_customers,
        count(*) filter (where customer_order_number = 2) as new_repeat_customers

    from milestone_orders
    group by {{ period_start(grain, 'order_date') }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}

),

joined as (

    select
        period_counts.grain,
        period_counts.period_start,
        period_counts.period_end,
        period_counts.customers_end,
        period_counts.churned_customers,
        period_counts.retention_rate_pct,
        period_counts.churn_rate_pct,
        period_counts.is_complete,
        coalesce(purchases.purchasing_customers, 0) as purchasing_customers,
        coalesce(purchases.orders, 0) as orders,
        coalesce(purchases.revenue, 0) as revenue,
        coalesce(purchases.returning_customers, 0) as returning_customers,
        coalesce(purchases.new_customer_orders, 0) as new_customer_orders,
        coalesce(purchases.returning_customer_orders, 0) as returning_customer_orders,
        coalesce(purchases.new_customer_revenue, 0) as new_customer_revenue,
        coalesce(purchases.returning_customer_revenue, 0) as returning_customer_revenue,
        coalesce(milestones.new_customers, 0) as new_customers,
        coalesce(milestones.new_customers_with_channel, 0) as new_customers_with_channel,
        coalesce(milestones.referred_customers, 0) as referred_customers,
        coalesce(survey_scores.responses, 0) as survey_responses,
        survey_scores.nps,
        survey_scores.csat_pct,
        survey_scores.ces_avg,
        sum(coalesce(milestones.new_customers, 0)) over cumulative as customers_to_date,
        sum(coalesce(milestones.new_repeat_customers, 0)) over cumulative
            as repeat_customers_to_date

    from period_counts
    left join purchases
        on period_counts.grain = purchases.grain
        and period_counts.period_start = purchases.period_start
    left join milestones
        on period_counts.grain = milestones.grain
        and period_counts.period_start = milestones.period_start
    left join survey_scores
        on period_counts.grain = survey_scores.grain
        and period_counts.period_start = survey_scores.period_start
    window cumulative as (
        partition by period_counts.grain
        order by period_counts.period_start
        rows between unbounded preceding and current row
    )

),

final as (

    select
        grain,
        period_start,
        period_end,
        customers_end as active_customers,
        purchasing_customers,
        new_customers,
        churned_customers,
        orders,
        revenue,
        case when orders > 0 then {{ money(money_per('revenue', 'orders')) }} end as aov,
        returning_customers,
        new_customer_orders,
        returning_customer_orders,
        new_customer_revenue,
        returning_customer_revenue,
        case
            when new_customer_orders > 0 then {{ money(money_per('new_customer_revenue', 'new_customer_orders')) }}
        end as new_customer_aov,
        case
            when returning_customer_orders > 0
                then {{ money(money_per('returning_customer_revenue', 'returning_customer_orders')) }}
        end as returning_customer_aov,
        case
            when new_customer_orders > 0 and returning_customer_orders > 0 and new_customer_revenue > 0
                then {{ pct(
                    '100.0 * (' ~ money_per('returning_customer_revenue', 'returning_customer_orders') ~ ')'
                    ~ ' / (' ~ money_per('new_customer_revenue', 'new_customer_orders') ~ ') - 100'
                ) }}
        end as returning_aov_premium_pct,
        case
            when purchasing_customers > 0 then {{ quantity('1.0 * orders / purchasing_customers') }}
        end as purchase_frequency,
        case
            when customers_to_date > 0
                then {{ pct('100.0 * repeat_customers_to_date / customers_to_date') }}
        end as repeat_purchase_rate_pct,
        case
            when new_customers_with_channel > 0
                then {{ pct('100.0 * referred_customers / new_customers') }}
        end as referral_rate_pct,
        retention_rate_pct,
        churn_rate_pct,
        case
            when {{ as_of_date() }} between period_start and period_end
                then customer_clv.avg_clv_12m
        end as avg_clv_12m,
        survey_responses,
        nps,
        csat_pct,
        ces_avg,
        is_complete

    from joined
    cross join customer_clv

)

select * from final
{{ published_order() }}
