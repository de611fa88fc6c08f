{#- One row per acquisition channel x monthly cohort with a CAC x month number since
    acquisition (0 = the acquisition month, up to the as-of date's month): the cohort's
    spend and size (cac_by_channel's monthly rows) and the margin its customers have
    earned to the end of that month (`margin` x their cumulative completed revenue,
    cohort_retention's acquisition_channel rows). The one source of both payback
    figures: per cohort (ltv_cac_by_channel) and per channel (payback_by_channel). -#}
{%- set margin = var('margin') -%}

with

cohorts as (

    select period_start as cohort_month, channel, new_customers, spend
    from {{ ref('cac_by_channel') }}
    where grain = 'month' and cac is not null

),

cohort_months as (

    select
        cohort_start as cohort_month,
        dimension_value as channel,
        period_number as month_number,
        revenue

    from {{ ref('cohort_retention') }}
    where grain = 'month' and dimension = 'acquisition_channel'

),

final as (

    select
        cohorts.channel,
        cohorts.cohort_month,
        cohorts.new_customers,
        cohorts.spend,
        cohort_months.month_number,
        {{ margin }} * sum(cohort_months.revenue) over (
            partition by cohorts.channel, cohorts.cohort_month
            order by cohort_months.month_number
            rows between unbounded preceding and current row
        ) as cumulative_margin

    from cohorts
    inner join cohort_months
        on cohorts.channel = cohort_months.channel
        and cohorts.cohort_month = cohort_months.cohort_month

)

select * from final
