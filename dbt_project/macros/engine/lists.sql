{#- An aggregate: the values of `expression` over the group's rows that meet `condition`,
    sorted ascending; an empty list when no row does. Sorting the values once is much
    cheaper than an aggregate ordered by another column (DuckDB buffers and sorts every
    group's rows for that). -#}
{% macro sorted_list(expression, condition) -%}
    {{ return(adapter.dispatch('sorted_list', 'customer_marts')(expression, condition)) }}
{%- endmacro %}

{% macro default__sorted_list(expression, condition) -%}
    coalesce(list_sort(list({{ expression }}) filter (where {{ condition }})), [])
{%- endmacro %}

{% macro spark__sorted_list(expression, condition) -%}
    array_sort(collect_list({{ expression }}) filter (where {{ condition }}))
{%- endmacro %}
