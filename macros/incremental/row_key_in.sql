{#- Whether the row of `alias` (source_file, source_sheet, source_row) is a row of one of
    the relations (CTEs) `relations`. -#}
{% macro row_key_in(alias, relations) -%}
    {%- set keys = [] -%}
    {%- for relation in relations -%}
        {%- do keys.append('select ' ~ relation ~ '.source_file, ' ~ relation
            ~ '.source_sheet, ' ~ relation ~ '.source_row from ' ~ relation) -%}
    {%- endfor -%}
    ({{ alias }}.source_file, {{ alias }}.source_sheet, {{ alias }}.source_row)
    in ({{ keys | join(' union all ') }})
{%- endmacro %}
