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
