{#- One row of a unit test's fixture of a raw table not loaded (macro get_fixture_sql), as
    `select ...`: each column of `columns` (name: type) with its value in `row` (the
    test's dict, through dbt's format_row) or a typed NULL; `row` none is the empty
    fixture (`limit 0`). -#}
{% macro raw_fixture_row(columns, row) -%}
    {%- set types = lowercase_keys(columns) -%}
    {%- set values = format_row(row or {}, types) -%}
    {%- set items = [] -%}
    {%- for column in columns -%}
        {%- do items.append(values.get(column | lower, safe_cast('null', columns[column]))
            ~ ' as ' ~ adapter.quote(column)) -%}
    {%- endfor -%}
    {{ return('select ' ~ items | join(', ') ~ ('' if row is not none else ' limit 0')) }}
{%- endmacro %}
