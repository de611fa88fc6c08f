{#- Models land in the schema they declare (staging, intermediate, marts), not in
    "<target schema>_<schema>": the published file's schema names are a contract. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ (custom_schema_name or target.schema) | trim }}
{%- endmacro %}
