{#- An aggregate: the list of `expression` over the group's rows that meet `condition`,
    in the order of `order_by` (ascending); an empty list when no row does. -#}
{% macro ordered_list(expression, order_by, condition) -%}
    {{ return(adapter.dispatch('ordered_list', 'customer_marts')(expression, order_by, condition)) }}
{%- endmacro %}

{% macro default__ordered_list(expression, order_by, condition) -%}
    coalesce(list({{ expression }} order by {{ order_by }}) filter (where {{ condition }}), [])
{%- endmacro %}

{#- collect_list keeps no order: the values are sorted by their key, then the key dropped. -#}
{% macro spark__ordered_list(expression, order_by, condition) -%}
    transform(
        array_sort(collect_list(named_struct('key', {{ order_by }}, 'value', {{ expression }})) filter (where {{ condition }})),
        entry -> entry.value
    )
{%- endmacro %}
