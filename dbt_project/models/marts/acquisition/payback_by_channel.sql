{#- CAC payback per channel, all its cohorts pooled: one row per channel with a CAC in
    ltv_cac_by_channel. For month number m (0 = the acquisition month), the cohorts that
    have reached month m by the as-of date are pooled: their cumulative margin (`margin`
    x the completed revenue of their customers up to month m, cohort_retention's monthly
    revenue by acquisition channel) against their spend. payback_months is the first m
    at which the pooled margin reaches the pooled spend, i.e. margin per acquired
    customer >= CAC. -#}
{%- set margin = var('margin') -%}

with

cohorts as (

    select channel, cohort_month, new_customers, spend
    from {{ ref('ltv_cac_by_channel') }}
    where cac is not null

),

cohort_months as (

    select cohort_start as cohort_month, dimension_value as channel, period_number, revenue
    from {{ ref('cohort_retention') }}
    where grain = 'month' and dimension = 'acquisition_channel'

),

cumulative as (

    select
        cohorts.channel,
        cohorts.cohort_month,
        cohorts.new_customers,
        cohorts.spend,
        cohort_months.period_number as month_number,
        sum(cohort_months.revenue) over (
            partition by cohorts.channel, cohorts.cohort_month
            order by cohort_months.period_number
            rows between unbounded preceding and current row
        ) as cumulative_revenue

    from cohorts
    inner join cohort_months
        on cohorts.channel = cohort_months.channel
        and cohorts.cohort_month = cohort_months.cohort_month

),

pooled as (

    select
        channel,
        month_number,
        sum(spend) as spend,
        {{ margin }} * sum(cumulative_revenue) as cumulative_margin

    from cumulative
    group by channel, month_number

),

paid_back as (

    select channel, min(month_number) as payback_months
    from pooled
    where cumulative_margin >= spend
    group by channel

),

channels as (

    select
        channel,
        count(*) as cohorts,
        sum(new_customers) as new_customers,
        sum(spend) as spend

    from cohorts
    group by channel

),

final as (

    select
        channels.channel,
        cast(channels.cohorts as bigint) as cohorts,
        cast(channels.new_customers as bigint) as new_customers,
        {{ money('channels.spend') }} as spend,
        {{ money('channels.spend / channels.new_customers') }} as cac,
        cast(paid_back.payback_months as integer) as payback_months

    from channels
    left join paid_back on channels.channel = paid_back.channel

)

select * from final
{{ published_order() }}
