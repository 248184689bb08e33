{#- The source headers a model column comes from, for a row of the given layout: the
    column map's source_header of each of the layout's columns whose mart_columns name
    `model_column_sql` (an SQL text expression: 'customers.area_code'), joined by ' / '.
    null when there is no map. The cells as written: validation_written and
    validation_cells. -#}
{% macro validation_header(column_map, layout_sql, model_column_sql) -%}
    {%- if column_map is none -%}
        {{ return('null::text') }}
    {%- endif -%}
(
    select string_agg(mapped.source_header, ' / ' order by mapped.source_column)
    {{ validation_mapped(column_map, layout_sql, model_column_sql) }}
)
{%- endmacro %}
