{#- How the marts publish numbers, so that two runs on the same data publish the same
    bytes. Every non-integer number is rounded once, where it is computed, to the
    decimal places of its kind (vars money_decimals, pct_decimals, quantity_decimals
    in dbt_project.yml; docs/metrics.md, "Published precision"):
      money     DECIMAL(18, money_decimals): cents of the reporting currency. Sums and
                means of money are taken over these exact decimals, so no aggregation
                order can move them.
      pct       DOUBLE rounded to pct_decimals: percentages (0-100) and NPS points.
      quantity  DOUBLE rounded to quantity_decimals: probabilities, expected purchases,
                means of counts, scores and days, lifetimes in years.
    Rounding a value computed in a fixed way gives the same double every time; the
    floating-point sums that DuckDB's parallel aggregation adds up in a varying order
    are avoided by summing the rounded decimals instead. -#}

{% macro published_decimals(kind) -%}
    {%- set decimals = var(kind ~ '_decimals') -%}
    {%- if decimals is not number or decimals < 0 or decimals != decimals | int -%}
        {{ exceptions.raise_compiler_error(
            "var " ~ kind ~ "_decimals must be a whole number of decimal places, not '" ~ decimals ~ "'"
        ) }}
    {%- endif -%}
    {{ return(decimals | int) }}
{%- endmacro %}

{#- An amount of money, in cents (DECIMAL(18, money_decimals)). -#}
{% macro money(expression) -%}
    {%- set decimals = published_decimals('money') -%}
    cast({{ published_round(expression, decimals) }} as decimal(18, {{ decimals }}))
{%- endmacro %}

{#- The mean of a money column, and an amount of money per unit of a count, as a DOUBLE
    computed in one way on every engine: the exact DECIMAL sum, converted once, divided
    by the count. (DuckDB's avg() and `/` of a DECIMAL give a DOUBLE; Spark's give a
    DECIMAL already rounded to 6 or more places, which can land a near-tie on the other
    side once money() rounds it to cents.) -#}
{% macro money_mean(column) -%}
    {{ money_per('sum(' ~ column ~ ')', 'count(' ~ column ~ ')') }}
{%- endmacro %}

{% macro money_per(amount, count) -%}
    cast({{ amount }} as double) / {{ count }}
{%- endmacro %}

{#- A percentage (0-100) or NPS points (-100..100), to pct_decimals places. -#}
{% macro pct(expression) -%}
    {{ published_round('cast(' ~ expression ~ ' as double)', published_decimals('pct')) }}
{%- endmacro %}

{#- Any other non-integer measure, to quantity_decimals places. -#}
{% macro quantity(expression) -%}
    {{ published_round('cast(' ~ expression ~ ' as double)', published_decimals('quantity')) }}
{%- endmacro %}

{#- `expression` rounded to `decimals` places, half away from zero, as DuckDB's round()
    rounds: a DECIMAL exactly, a DOUBLE by rounding its binary value x 10^decimals to a
    whole number (so 61.855, whose double is just below it, rounds to 61.85). Spark rounds
    a DOUBLE's shortest decimal text instead (61.86), and keeps a DECIMAL divided by a
    number a DECIMAL where DuckDB makes it a DOUBLE; its implementation rounds the value
    as a DOUBLE the DuckDB way, which for the pipeline's money (at most money_decimals
    places before rounding, or a quotient DuckDB computes as a DOUBLE) is DuckDB's result
    on both counts (macros/engine/rounding.sql). -#}
{% macro published_round(expression, decimals) -%}
    {{ return(adapter.dispatch('published_round', 'customer_marts')(expression, decimals)) }}
{%- endmacro %}

{% macro default__published_round(expression, decimals) -%}
    round({{ expression }}, {{ decimals }})
{%- endmacro %}

{#- The end of a mart's final select: rows are stored in a total order (every column,
    left to right; the grain's key comes first), so `select *` and the Parquet export
    return the same rows in the same order on every run. A large mart passes its unique
    key (tested unique), a total order as well, and far cheaper to sort by than every
    column. -#}
{% macro published_order(key=none) -%}
    order by {{ key | join(', ') if key else 'all' }}
{%- endmacro %}
