{#- One row per day: the time spine MetricFlow joins to for time-based metrics. From
    the first day of the year `time_spine_start_year` to the last day of
    `time_spine_end_year` (vars). -#}
with

days as (

    {{ dbt.date_spine(
        "day",
        "cast('" ~ var('time_spine_start_year', 2000) ~ "-01-01' as date)",
        "cast('" ~ (var('time_spine_end_year', 2040) + 1) ~ "-01-01' as date)",
    ) }}

),

final as (

    select cast(date_day as date) as date_day
    from days

)

select * from final
