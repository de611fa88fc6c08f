{#- published_round on Spark (macros/published_values.sql): DuckDB rounds a double to d
    places exactly, half away from zero, by the double's binary value (61.855 is stored
    just below 61.855, so it rounds to 61.85); Spark's round() rounds its shortest decimal
    text (61.86). Here y = x * 10^d is rounded half away from zero, and where y is a tie
    (k + 0.5) only because the product was rounded, the product's exact error (Dekker's
    product, with 10^d split in two halves at compile time) says on which side of the tie
    x * 10^d really lies. -#}
{% macro spark__published_round(expression, decimals) -%}
    {%- set m = 10.0 ** decimals -%}
    {%- set split = 134217729.0 * m -%}
    {%- set m_high = split - (split - m) -%}
    {%- set m_low = m - m_high -%}
    {%- set x = '(cast(' ~ expression ~ ' as double))' -%}
    {%- set y = '(' ~ x ~ ' * ' ~ m ~ 'D)' -%}
    {%- set x_high = '(134217729.0D * ' ~ x ~ ' - (134217729.0D * ' ~ x ~ ' - ' ~ x ~ '))' -%}
    {%- set x_low = '(' ~ x ~ ' - ' ~ x_high ~ ')' -%}
    {%- set error -%}
        (({{ x_high }} * {{ m_high }}D - {{ y }}) + {{ x_high }} * {{ m_low }}D + {{ x_low }} * {{ m_high }}D) + {{ x_low }} * {{ m_low }}D
    {%- endset -%}
    (case
        when abs({{ y }}) - floor(abs({{ y }})) = 0.5D and {{ y }} * ({{ error }}) < 0
            then round({{ y }}) - sign({{ y }})
        else round({{ y }})
    end) / {{ m }}D
{%- endmacro %}
