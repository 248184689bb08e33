{#- The review key of a source row. -#}
{% macro validation_row_key(alias) -%}
    'row:' || concat_ws('|', {{ alias }}.source_file, {{ alias }}.source_sheet,
        {{ alias }}.source_row)
{%- endmacro %}
