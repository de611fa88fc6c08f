{#- Generic tests used across the marts (no package download needed). -#}

{#- Every row satisfies a SQL expression; the failing rows are returned. -#}
{% test expression_is_true(model, expression, where_clause=none) %}
    select *
    from {{ model }}
    where not coalesce(({{ expression }}), false)
    {%- if where_clause %} and ({{ where_clause }}){% endif %}
{% endtest %}

{#- A column's non-null values lie within [min_value, max_value]. -#}
{% test within_range(model, column_name, min_value=none, max_value=none) %}
    select {{ column_name }} as out_of_range_value
    from {{ model }}
    where {{ column_name }} is not null
    {%- if min_value is not none %} and ({{ column_name }} < {{ min_value }}{% endif %}
    {%- if max_value is not none %}{% if min_value is not none %} or{% else %} and ({% endif %} {{ column_name }} > {{ max_value }}{% endif %})
{% endtest %}

{#- Two models have the same number of rows (optionally filtered). -#}
{% test equal_row_count(model, compare_model, where_clause=none) %}
    with actual as (select count(*) as row_count from {{ model }}),
    expected as (
        select count(*) as row_count from {{ compare_model }}
        {%- if where_clause %} where {{ where_clause }}{% endif %}
    )
    select actual.row_count as actual_rows, expected.row_count as expected_rows
    from actual
    cross join expected
    where actual.row_count != expected.row_count
{% endtest %}

{#- The combination of columns is unique (a key of several columns). -#}
{% test unique_combination(model, columns) %}
    select {{ columns | join(', ') }}, count(*) as occurrences
    from {{ model }}
    group by {{ columns | join(', ') }}
    having count(*) > 1
{% endtest %}

{#- The sum of a column equals the row count of another model (a reconciliation). -#}
{% test equal_sum(model, column_name, compare_model) %}
    with actual as (select coalesce(sum({{ column_name }}), 0) as total from {{ model }}),
    expected as (select count(*) as total from {{ compare_model }})
    select actual.total as actual_total, expected.total as expected_total
    from actual
    cross join expected
    where actual.total != expected.total
{% endtest %}
