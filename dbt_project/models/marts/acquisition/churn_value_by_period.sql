{#- Value lost to churn: one row per grain (month, quarter, year) x period of
    retention_by_period. The customers lost in the period (int_customers_lost: active at
    its start, not at its end) and the formula CLV they took with them: each one's
    annual value when they left x customer_clv's expected lifetime in years (the same
    for every customer). customer_clv's own figures are as of the as-of date, when a
    customer who left long ago is worth ~0; the value lost is what they were worth when
    they left. -#}
with

periods as (

    select grain, period_start, period_end, is_complete
    from {{ ref('int_periods_retention_counted') }}
    where grain in ('{{ period_grains_from_month() | join("', '") }}')

),

lost_customers as (

    select grain, period_start, annual_value
    from {{ ref('int_customers_lost') }}

),

lifetime as (

    select max(expected_lifetime_years) as expected_lifetime_years
    from {{ ref('customer_clv') }}

),

lost_by_period as (

    select
        grain,
        period_start,
        count(*) as lost_customers,
        sum(annual_value) as lost_annual_value

    from lost_customers
    group by grain, period_start

),

final as (

    select
        periods.grain,
        periods.period_start,
        periods.period_end,
        cast(coalesce(lost_by_period.lost_customers, 0) as bigint) as lost_customers,
        {{ money('coalesce(lost_by_period.lost_annual_value, 0)') }} as lost_annual_value,
        lifetime.expected_lifetime_years,
        {{ money('coalesce(lost_by_period.lost_annual_value, 0) * lifetime.expected_lifetime_years') }}
            as lost_clv,
        case
            when lost_by_period.lost_customers > 0
                then {{ money('lost_by_period.lost_annual_value * lifetime.expected_lifetime_years / lost_by_period.lost_customers') }}
        end as avg_lost_clv,
        periods.is_complete

    from periods
    cross join lifetime
    left join lost_by_period
        on periods.grain = lost_by_period.grain
        and periods.period_start = lost_by_period.period_start

)

select * from final
{{ published_order() }}
