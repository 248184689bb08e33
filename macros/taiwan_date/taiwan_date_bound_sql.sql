{#-
    A bound as a SQL date: none is no bound (a NULL date); a string that is exactly a
    YYYY-MM-DD date becomes a date literal; anything else is a SQL expression (a column,
    current_date, '2010-01-01', date '2010-01-01'), cast to date.
-#}
{% macro taiwan_date_bound_sql(bound) -%}
    {%- if bound is none -%}
        cast(null as date)
    {%- elif bound is string
        and bound | length == 10
        and bound[4] == '-' and bound[7] == '-'
        and bound.replace('-', '').isdigit() -%}
        cast('{{ bound }}' as date)
    {%- else -%}
        cast(({{ bound }}) as date)
    {%- endif -%}
{%- endmacro %}
