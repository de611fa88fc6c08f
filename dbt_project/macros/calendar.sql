{#- The run's as-of date as a SQL date literal. Nothing after it is used.
    The var `as_of_date` (--vars, by hand), else the environment's CUSTOMER_MARTS_AS_OF_DATE
    (how the pipeline passes it), else today. The environment is read only when models
    run, never while dbt parses: the date does not shape the graph, and a value that
    changes every night in --vars or in a parsed env_var would make dbt parse the whole
    project again every night instead of reusing its saved parse (partial parsing). -#}
{% macro as_of_date() -%}
    {%- set value = var('as_of_date', none) -%}
    {%- if not value and execute -%}
        {%- set value = env_var('CUSTOMER_MARTS_AS_OF_DATE', '') -%}
    {%- endif -%}
    {%- set value = value or run_started_at.strftime('%Y-%m-%d') -%}
    cast('{{ value }}' as date)
{%- endmacro %}

{#- The reporting grains of the period marts, finest first. -#}
{% macro period_grains() -%}
    {{ return(['week', 'month', 'quarter', 'year']) }}
{%- endmacro %}

{#- The reporting grains from the month on: those of the retention, churn-value and
    acquisition marts (a week is shorter than a churn window or a spend report). -#}
{% macro period_grains_from_month() -%}
    {{ return(['month', 'quarter', 'year']) }}
{%- endmacro %}

{#- A UTC timestamp as local time in the reporting time zone (var reporting_timezone).
    With the default, UTC, it is the column itself, so no time zone arithmetic is paid. -#}
{% macro to_reporting_time(column) -%}
    {%- set tz = var('reporting_timezone', 'UTC') -%}
    {%- if tz | upper == 'UTC' -%}
        {{ column }}
    {%- else -%}
        {{ utc_to_local_time(column, tz) }}
    {%- endif -%}
{%- endmacro %}

{#- First day of the period (week: ISO, Monday start; month; quarter; year) holding a
    reporting-time timestamp or date. -#}
{% macro period_start(grain, column) -%}
    cast({{ dbt.date_trunc(grain, column) }} as date)
{%- endmacro %}

{#- Last day of the period that starts on `period_start_column`. -#}
{% macro period_end(grain, period_start_column) -%}
    cast({{ dbt.dateadd('day', -1, dbt.dateadd(grain, 1, period_start_column)) }} as date)
{%- endmacro %}

{#- Whole periods from one period start to another, for a grain. -#}
{% macro periods_between(grain, from_date, to_date) -%}
    {{ dbt.datediff(from_date, to_date, grain) }}
{%- endmacro %}

{#- Periods are numbered from a fixed origin (the week of Monday 1970-01-05), so that
    consecutive periods have consecutive numbers at every grain: set-based period
    arithmetic without a calendar table. -#}
{% macro period_origin() -%}
    cast('1970-01-05' as date)
{%- endmacro %}

{#- The number of the period (at `grain`) that contains a date. -#}
{% macro period_index(grain, date_column) -%}
    {{ periods_between(grain, period_origin(), period_start(grain, date_column)) }}
{%- endmacro %}

{#- The first day of period number `index_column` (the inverse of period_index). -#}
{% macro period_start_of_index(grain, index_column) -%}
    {{ period_start(grain, dbt.dateadd(grain, index_column, period_origin())) }}
{%- endmacro %}
