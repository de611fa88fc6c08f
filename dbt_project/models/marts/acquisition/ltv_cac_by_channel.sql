{#- LTV:CAC and payback: one row per acquisition channel x acquisition cohort (month), the
    channel-months of cac_by_channel. The cohort's customers' historic CLV (margin on
    their revenue to date) and predicted 12-month CLV (customer_clv.clv_12m, margin
    already applied) per customer, each over the cohort's CAC; payback_months is the
    first month number (0 = the acquisition month) at whose end the cohort's cumulative
    margin (int_channel_cohort_margins) reaches its spend, i.e. cumulative margin per
    acquired customer >= CAC. The comparisons use the exact sums, not the rounded
    per-customer figures. -#}
{%- set margin = var('margin') -%}

with

cac as (

    select
        period_start as cohort_month,
        channel,
        spend,
        new_customers,
        cac

    from {{ ref('cac_by_channel') }}
    where grain = 'month'

),

acquired as (

    select
        customer_id,
        cohort_month,
        {{ unknown_if_missing('acquisition_channel') }} as channel

    from {{ ref('int_customers_acquired') }}

),

customer_clv as (

    select customer_id, historic_clv, clv_12m
    from {{ ref('customer_clv') }}

),

cohort_values as (

    select
        acquired.channel,
        acquired.cohort_month,
        sum(customer_clv.historic_clv) as historic_clv,
        sum(customer_clv.clv_12m) / nullif(count(customer_clv.clv_12m), 0) as avg_clv_12m

    from acquired
    inner join customer_clv on acquired.customer_id = customer_clv.customer_id
    group by acquired.channel, acquired.cohort_month

),

paid_back as (

    select channel, cohort_month, min(month_number) as payback_months
    from {{ ref('int_channel_cohort_margins') }}
    where cumulative_margin >= spend
    group by channel, cohort_month

),

final as (

    select
        cac.channel,
        cac.cohort_month,
        cac.new_customers,
        cac.spend,
        cac.cac,
        {{ money(money_per('cohort_values.historic_clv', 'cac.new_customers')) }} as avg_historic_clv,
        {{ money('cohort_values.avg_clv_12m') }} as avg_clv_12m,
        case
            when cac.cac > 0
                then {{ quantity(margin ~ ' * cohort_values.historic_clv / cac.spend') }}
        end as historic_ltv_cac_ratio,
        case
            when cac.cac > 0
                then {{ quantity('cohort_values.avg_clv_12m * cac.new_customers / cac.spend') }}
        end as predicted_ltv_cac_ratio,
        cast(paid_back.payback_months as integer) as payback_months

    from cac
    left join cohort_values
        on cac.channel = cohort_values.channel
        and cac.cohort_month = cohort_values.cohort_month
    left join paid_back
        on cac.channel = paid_back.channel
        and cac.cohort_month = paid_back.cohort_month

)

select * from final
{{ published_order() }}
