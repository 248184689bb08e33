{#- A unit test's fixture of a raw table not loaded (macro get_fixture_sql): one `select`
    per row of `rows` (macro raw_fixture_row), joined by `union all`, or none of them. -#}
{% macro raw_fixture_sql(columns, rows) -%}
    {%- set selects = [] -%}
    {%- for row in (rows or [none]) -%}
        {%- do selects.append(raw_fixture_row(columns, row)) -%}
    {%- endfor -%}
    {{ return(selects | join('\nunion all\n')) }}
{%- endmacro %}
