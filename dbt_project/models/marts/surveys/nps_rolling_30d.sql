{#- The trailing-window NPS survey tools show: one row per day from the first scored
    response to the as-of date, over the responses of that day and the
    nps_rolling_days - 1 days before it (default 30 days in all).

    Each response counts on the days [response_date, response_date + window - 1]; with
    nps_count_mode = latest_per_customer it stops counting the day before the same
    customer's next response. Counted as +1/-1 events per category, then running sums:
    no day x response expansion. -#}
{%- set window_days = var('nps_rolling_days') -%}

with

responses as (

    select
        customer_id,
        responded_at,
        response_id,
        response_date,
        nps_category

    from {{ ref('fct_survey_responses') }}
    where nps_category is not null

),

counted_spans as (

    select
        nps_category,
        response_date as counted_from,
        {%- if var('nps_count_mode') == 'latest_per_customer' %}
        least(
            cast({{ dbt.dateadd('day', window_days - 1, 'response_date') }} as date),
            coalesce(
                case when customer_id is not null then cast({{ dbt.dateadd('day', -1, 'lead(response_date) over (
                    partition by customer_id order by responded_at, response_id
                )') }} as date) end,
                cast({{ dbt.dateadd('day', window_days - 1, 'response_date') }} as date)
            )
        ) as counted_until
        {%- else %}
        cast({{ dbt.dateadd('day', window_days - 1, 'response_date') }} as date) as counted_until
        {%- endif %}

    from responses

),

count_changes as (

    select
        day,
        sum(case when nps_category = 'promoter' then change else 0 end) as promoters,
        sum(case when nps_category = 'passive' then change else 0 end) as passives,
        sum(case when nps_category = 'detractor' then change else 0 end) as detractors

    from (
        select counted_from as day, nps_category, 1 as change
        from counted_spans
        where counted_until >= counted_from
        union all
        select cast({{ dbt.dateadd('day', 1, 'counted_until') }} as date), nps_category, -1
        from counted_spans
        where counted_until >= counted_from
    ) as changes
    group by day

),

days as (

    select {{ day_series('min(response_date)', as_of_date()) }} as day

    from responses

),

running as (

    select
        days.day,
        cast(sum(coalesce(count_changes.promoters, 0)) over running_total as bigint) as promoters,
        cast(sum(coalesce(count_changes.passives, 0)) over running_total as bigint) as passives,
        cast(sum(coalesce(count_changes.detractors, 0)) over running_total as bigint) as detractors

    from days
    left join count_changes on days.day = count_changes.day
    window running_total as (order by days.day rows between unbounded preceding and current row)

),

final as (

    select
        day,
        cast({{ dbt.dateadd('day', 1 - window_days, 'day') }} as date) as window_start,
        promoters + passives + detractors as responses,
        promoters,
        passives,
        detractors,
        {{ pct(nps('promoters', 'detractors', 'promoters + passives + detractors')) }} as nps,
        {{ pct(nps_margin_of_error('promoters', 'detractors', 'promoters + passives + detractors')) }}
            as nps_margin_of_error,
        promoters + passives + detractors >= {{ var('min_survey_responses') }} as is_reportable

    from running

)

select * from final
{{ published_order() }}
