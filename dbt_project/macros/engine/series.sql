{#- Set-returning expressions of a select list: one row per value, the other columns of
    the select repeated on each. -#}

{#- The whole numbers start, start + 1, ..., stop (none when stop < start). -#}
{% macro integer_series(start, stop) -%}
    {{ return(adapter.dispatch('integer_series', 'customer_marts')(start, stop)) }}
{%- endmacro %}

{% macro default__integer_series(start, stop) -%}
    unnest(generate_series({{ start }}, {{ stop }}))
{%- endmacro %}

{% macro spark__integer_series(start, stop) -%}
    explode(case when {{ stop }} >= {{ start }} then sequence({{ start }}, {{ stop }}) else array() end)
{%- endmacro %}


{#- The days (dates) from `start` to `stop`, both included (none when stop < start). -#}
{% macro day_series(start, stop) -%}
    {{ return(adapter.dispatch('day_series', 'customer_marts')(start, stop)) }}
{%- endmacro %}

{% macro default__day_series(start, stop) -%}
    cast(unnest(generate_series({{ start }}, {{ stop }}, interval 1 day)) as date)
{%- endmacro %}

{% macro spark__day_series(start, stop) -%}
    explode(case
        when cast({{ stop }} as date) >= cast({{ start }} as date)
            then sequence(cast({{ start }} as date), cast({{ stop }} as date), interval 1 day)
        else array()
    end)
{%- endmacro %}
