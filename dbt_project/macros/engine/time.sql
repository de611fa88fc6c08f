{#- A UTC timestamp as wall-clock time in the IANA time zone `tz` (a timestamp without
    a zone). -#}
{% macro utc_to_local_time(column, tz) -%}
    {{ return(adapter.dispatch('utc_to_local_time', 'customer_marts')(column, tz)) }}
{%- endmacro %}

{% macro default__utc_to_local_time(column, tz) -%}
    timezone('{{ tz }}', {{ column }} at time zone 'UTC')
{%- endmacro %}

{#- Spark's timestamps are instants shown in the session's time zone (UTC for the
    pipeline): from_utc_timestamp shifts one to the zone's wall clock. -#}
{% macro spark__utc_to_local_time(column, tz) -%}
    from_utc_timestamp({{ column }}, '{{ tz }}')
{%- endmacro %}


{#- dbt.datediff on Spark, as DuckDB's date_diff counts (the pipeline's reference): days
    and months, quarters, years between the dates' calendar parts (the boundaries
    crossed), whole weeks of 7 days, always a bigint. dbt's own dispatch picks this
    project's spark__datediff over dbt-spark's, which returns an int for days and counts
    quarters from day-of-year arithmetic. The arguments are dates or timestamps. -#}
{% macro spark__datediff(first_date, second_date, datepart) -%}
    {%- set first = 'cast(' ~ first_date ~ ' as date)' -%}
    {%- set second = 'cast(' ~ second_date ~ ' as date)' -%}
    {%- if datepart == 'day' -%}
        cast(datediff({{ second }}, {{ first }}) as bigint)
    {%- elif datepart == 'week' -%}
        cast(datediff({{ second }}, {{ first }}) div 7 as bigint)
    {%- elif datepart == 'month' -%}
        cast((year({{ second }}) - year({{ first }})) * 12 + month({{ second }}) - month({{ first }}) as bigint)
    {%- elif datepart == 'quarter' -%}
        cast((year({{ second }}) - year({{ first }})) * 4 + quarter({{ second }}) - quarter({{ first }}) as bigint)
    {%- elif datepart == 'year' -%}
        cast(year({{ second }}) - year({{ first }}) as bigint)
    {%- else -%}
        {{ exceptions.raise_compiler_error("datediff by '" ~ datepart ~ "' is not implemented on Spark") }}
    {%- endif -%}
{%- endmacro %}
