{#- Engine macros: what DuckDB and Spark SQL spell differently, one adapter.dispatch macro
    each, with a default__ implementation (DuckDB's, the pipeline's engine) and a spark__
    one (dbt-spark; dbt-databricks dispatches to it too). Models call these or dbt's own
    cross-database macros (dbt.dateadd, dbt.datediff, dbt.type_string, ...), never
    engine-specific SQL, so that each model exists once (docs/engines.md). -#}

{#- A row of values that compares field by field, left to right: the ordering key of
    max_by / min_by ("the value at the latest (a, b)"). -#}
{% macro row_value(expressions) -%}
    {{ return(adapter.dispatch('row_value', 'customer_marts')(expressions)) }}
{%- endmacro %}

{% macro default__row_value(expressions) -%}
    ({{ expressions | join(', ') }})
{%- endmacro %}

{% macro spark__row_value(expressions) -%}
    struct({{ expressions | join(', ') }})
{%- endmacro %}


{#- A struct of named fields (a list of (name, expression) pairs, in order), read back
    as `column.name`. -#}
{% macro struct_value(fields) -%}
    {{ return(adapter.dispatch('struct_value', 'customer_marts')(fields)) }}
{%- endmacro %}

{% macro default__struct_value(fields) -%}
    { {%- for name, expression in fields %}'{{ name }}': {{ expression }}{{ ', ' if not loop.last }}{% endfor -%} }
{%- endmacro %}

{% macro spark__struct_value(fields) -%}
    named_struct({%- for name, expression in fields %}'{{ name }}', {{ expression }}{{ ', ' if not loop.last }}{% endfor -%})
{%- endmacro %}
