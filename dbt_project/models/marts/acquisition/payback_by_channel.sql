{#- CAC payback per channel, all its cohorts pooled: one row per channel with a cohort
    that has a CAC. For month number m (0 = the acquisition month), the cohorts that
    have reached month m by the as-of date are pooled: their cumulative margin
    (int_channel_cohort_margins) against their spend. payback_months is the first m
    at which the pooled margin reaches the pooled spend, i.e. margin per acquired
    customer >= CAC. -#}
with

cohort_margins as (

    select * from {{ ref('int_channel_cohort_margins') }}

),

pooled as (

    select
        channel,
        month_number,
        sum(spend) as spend,
        sum(cumulative_margin) as cumulative_margin

    from cohort_margins
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

    from cohort_margins
    where month_number = 0
    group by channel

),

final as (

    select
        channels.channel,
        cast(channels.cohorts as bigint) as cohorts,
        cast(channels.new_customers as bigint) as new_customers,
        {{ money('channels.spend') }} as spend,
        {{ money(money_per('channels.spend', 'channels.new_customers')) }} as cac,
        cast(paid_back.payback_months as integer) as payback_months

    from channels
    left join paid_back on channels.channel = paid_back.channel

)

select * from final
{{ published_order() }}
