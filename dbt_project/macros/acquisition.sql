{#- The acquisition channel as the acquisition marts show it: '(none)' for customers
    whose first completed order has no channel, so that they are shown, not dropped. -#}
{% macro channel_or_none(column) -%}
    coalesce(nullif({{ column }}, ''), '(none)')
{%- endmacro %}
