{#- The freshness query of a raw source (`loaded_at_query`): when the pipeline last loaded
    rows of it, from the ingest manifest (audit.ingested_files, one row per file; its
    `loaded_at` is UTC). A file whose rows were all duplicates or quarantined loaded
    nothing new and does not count. -#}
{% macro raw_loaded_at(source_name) -%}
    select max(loaded_at) from audit.ingested_files
    where source = '{{ source_name }}' and status = 'loaded' and rows_loaded > 0
{%- endmacro %}
