{#- A customer attribute as the marts split by it: '(unknown)' when it is missing (NULL or
    empty), so that customers without it are shown, not dropped, and each attribute's
    groups add up to all customers. The acquisition marts and the retention dimensions
    (int_customer_dimensions) use the same label. -#}
{% macro unknown_if_missing(column) -%}
    coalesce(nullif({{ column }}, ''), '(unknown)')
{%- endmacro %}
