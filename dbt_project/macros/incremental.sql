{#- Incremental models keyed by changed customers (docs/incremental.md).

    A model whose rows of one customer depend only on that customer's rows (an order's
    number among the customer's orders, the customer's first order, ...) is
    materialized 'incremental' with the strategy 'replace_changed_customers':

        {{ config(
            materialized=by_customer_materialization(),
            incremental_strategy='replace_changed_customers',
            on_schema_change='fail',
        ) }}
        ... where {{ changed_customers_only('customer_id') }}

    On a night's run it selects only the rows of the customers in
    int_customers_changed, deletes every row those customers have in the table (also a
    customer who has no row left: a delete by the new rows' key would keep theirs), and
    inserts the new rows, in one transaction. A full refresh (`--full-refresh`, a new
    table) selects every customer. The columns stay as the last full build made them
    (on_schema_change 'fail'; a change of a model's code rebuilds it fully anyway).
    Every such model names a row's customer `customer_id`. NULL matches NULL: survey
    responses without a customer are one group, recomputed when one of them changes. -#}

{#- Whether this engine builds those models incrementally. DuckDB does. Spark builds
    them in full, as tables, on every run (as a first run builds them on DuckDB): the
    pipeline keeps its run record (audit.*), which says what changed, in DuckDB only. -#}
{% macro builds_incrementally() -%}
    {{ return(adapter.dispatch('builds_incrementally', 'customer_marts')()) }}
{%- endmacro %}

{% macro default__builds_incrementally() -%}
    {{ return(true) }}
{%- endmacro %}

{% macro spark__builds_incrementally() -%}
    {{ return(false) }}
{%- endmacro %}

{#- The materialization of a model keyed by changed customers on this engine. -#}
{% macro by_customer_materialization() -%}
    {{ return('incremental' if builds_incrementally() else 'table') }}
{%- endmacro %}

{#- A condition on `column` (a customer id): true for the changed customers' rows on
    an incremental run, for every row otherwise. -#}
{% macro changed_customers_only(column) -%}
    {#- ref() outside the branch, so that dbt knows the dependency when it parses -#}
    {%- set changed = ref('int_customers_changed') -%}
    {%- if is_incremental() -%}
        {{ in_changed_customers(column, changed) }}
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#- (The subquery's column has a name of its own: an unqualified `column` such as
    customer_id must name the outer row's, not the changed customer's.) -#}
{% macro in_changed_customers(column, changed) -%}
    exists (
        select 1
        from (select customer_id as changed_customer_id from {{ changed }}) as changed_customers
        where changed_customer_id is not distinct from {{ column }}
    )
{%- endmacro %}

{#- The strategy: the changed customers' rows go, the model's new rows (only theirs,
    by changed_customers_only) come in. -#}
{% macro get_incremental_replace_changed_customers_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ target }} as target_rows
    where {{ in_changed_customers('target_rows.customer_id', ref('int_customers_changed')) }};

    insert into {{ target }} ({{ columns }})
    select {{ columns }} from {{ arg_dict['temp_relation'] }}
{%- endmacro %}
