{#- The run's as-of date as a SQL date literal. Nothing after it is used. -#}
{% macro as_of_date() -%}
    {%- set value = var('as_of_date', none) or run_started_at.strftime('%Y-%m-%d') -%}
    cast('{{ value }}' as date)
{%- endmacro %}

{#- A UTC timestamp as local time in the reporting time zone (var reporting_timezone).
    With the default, UTC, it is the column itself, so no time zone arithmetic is paid. -#}
{% macro to_reporting_time(column) -%}
    {%- set tz = var('reporting_timezone', 'UTC') -%}
    {%- if tz | upper == 'UTC' -%}
        {{ column }}
    {%- else -%}
        timezone('{{ tz }}', {{ column }} at time zone 'UTC')
    {%- endif -%}
{%- endmacro %}

{#- First day of the period (week: ISO, Monday start; month; quarter; year) holding a
    reporting-time timestamp or date. -#}
{% macro period_start(grain, column) -%}
    cast({{ dbt.date_trunc(grain, column) }} as date)
{%- endmacro %}

{#- Whole periods from one period start to another, for a grain. -#}
{% macro periods_between(grain, from_date, to_date) -%}
    {{ dbt.datediff(from_date, to_date, grain) }}
{%- endmacro %}
