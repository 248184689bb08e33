{#- A row's cells as written: its value of each column named in `written_sql` (a text[]
    from validation_written), '' where it has none, joined by ' / ' in the array's order;
    null for a null or empty array. -#}
{% macro validation_cells(written_sql, row_json) -%}
(
    select string_agg(coalesce({{ row_json }} ->> written.name, ''), ' / ' order by written.n)
    from unnest({{ written_sql }}) with ordinality as written (name, n)
)
{%- endmacro %}
