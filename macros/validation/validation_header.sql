{#- The source headers a model column comes from, for a row of the given layout: the
    column map's source_header of each of the layout's columns whose mart_columns name
    `model_column_sql` (an SQL text expression: 'customers.area_code'), joined by ' / '.
    With `row_json`, the cells as written instead: the row's value of each such column's
    as_written model column. null when there is no map. -#}
{% macro validation_header(column_map, layout_sql, model_column_sql, row_json=none) -%}
    {%- if column_map is none -%}
        {{ return('null::text') }}
    {%- endif -%}
    {%- set value = 'mapped.source_header' if row_json is none
        else 'coalesce(' ~ row_json ~ " ->> split_part(mapped.as_written, '.', 2), '')" -%}
    {#- the column map's rows (of {alias}) whose mart_columns name the model column -#}
    {%- set feeds = "' ' || {alias}.mart_columns || ' ' like '% ' || "
        ~ model_column_sql ~ " || ' %'" -%}
    {#- any layout: the first layout (by name) whose columns feed it -#}
    {%- set layout = layout_sql if layout_sql is not none
        else '(select min(other.layout) from ' ~ column_map ~ ' as other where '
        ~ feeds | replace('{alias}', 'other') ~ ')' -%}
    {#- with `row_json`, only the columns a final column keeps as written -#}
    {%- set condition = feeds | replace('{alias}', 'mapped')
        ~ (' and mapped.as_written is not null' if row_json is not none else '') -%}
(
    select string_agg({{ value }}, ' / ' order by mapped.source_column)
    from {{ column_map }} as mapped
    where
        mapped.layout = {{ layout }}
        and {{ condition }}
)
{%- endmacro %}
