{#- A 1-5 quintile score of a column over all rows: 5 for the top fifth. Ranks, not
    buckets of equal size: tied values share a score (so a large group of customers
    with one order all score 1 on frequency), and the result is deterministic.
    descending=true scores the smallest values highest (recency: fewer days = 5). -#}
{% macro quintile_score(column, descending=false) -%}
    least(5, 1 + cast(floor(5 * percent_rank() over (
        order by {{ column }} {{ 'desc' if descending else 'asc' }}
    )) as integer))
{%- endmacro %}
