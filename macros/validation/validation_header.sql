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
(
    select string_agg({{ value }}, ' / ' order by mapped.source_column)
    {{ validation_mapped(column_map, layout_sql, model_column_sql, row_json is not none) }}
)
{%- endmacro %}

{#- What validation_header(..., row_json) reads of a row, without the row: the as_written
    model columns (the part after the dot) of the column map's rows that feed the model
    column, in source column order, as text[]; null when there are none or no map. With
    validation_cells, a query that names the same few (layout, model column) pairs for
    many rows looks the map up once per pair instead of once per row. -#}
{% macro validation_written(column_map, layout_sql, model_column_sql) -%}
    {%- if column_map is none -%}
        {{ return('null::text[]') }}
    {%- endif -%}
(
    select array_agg(split_part(mapped.as_written, '.', 2) order by mapped.source_column)
    {{ validation_mapped(column_map, layout_sql, model_column_sql, true) }}
)
{%- endmacro %}

{#- The row's cells as written: its value of each column named in `written_sql` (a text[]
    from validation_written), '' where it has none, joined by ' / ' in the array's order;
    null for a null or empty array. The same text as validation_header(..., row_json). -#}
{% macro validation_cells(written_sql, row_json) -%}
(
    select string_agg(coalesce({{ row_json }} ->> written.name, ''), ' / ' order by written.n)
    from unnest({{ written_sql }}) with ordinality as written (name, n)
)
{%- endmacro %}

{#- The FROM and WHERE of the column map's rows (alias mapped) that feed the model column
    in the layout (none: the first layout, by name, whose columns feed it); with `written`,
    only those whose cell a final column keeps as written. -#}
{% macro validation_mapped(column_map, layout_sql, model_column_sql, written=false) -%}
    {#- the column map's rows (of {alias}) whose mart_columns name the model column -#}
    {%- set feeds = "' ' || {alias}.mart_columns || ' ' like '% ' || "
        ~ model_column_sql ~ " || ' %'" -%}
    {%- set layout = layout_sql if layout_sql is not none
        else '(select min(other.layout) from ' ~ column_map ~ ' as other where '
        ~ feeds | replace('{alias}', 'other') ~ ')' -%}
    from {{ column_map }} as mapped
    where
        mapped.layout = {{ layout }}
        and {{ feeds | replace('{alias}', 'mapped') }}
    {%- if written %} and mapped.as_written is not null{% endif %}
{%- endmacro %}
