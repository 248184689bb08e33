{#- A column of a raw history table, quoted, or a text NULL when the table lacks it (a
    layout without that column). -#}
{% macro history_column(columns, name) -%}
    {{ '"' ~ name ~ '"' if name in columns else 'cast(null as text)' }}
{%- endmacro %}
