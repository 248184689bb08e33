{#- A relation of `sources` (dicts {'file', 'sheet', 'load_id'}) as rows (source_file,
    source_sheet, load_id): a VALUES list, or an empty relation of the same shape. -#}
{% macro sources_values(sources) -%}
    {%- if sources | length == 0 -%}
        select
            null::text as source_file,
            null::text as source_sheet,
            null::bigint as load_id
        where false
    {%- else -%}
        select
            listed.source_file,
            listed.source_sheet,
            listed.load_id
        from (
            values
        {%- for source in sources %}
                (
                    {{ "'" ~ (source.file | replace("'", "''")) ~ "'" }}::text,
                    {{ "'" ~ (source.sheet | replace("'", "''")) ~ "'" }}::text,
                    {{ source.load_id | int }}::bigint
                ){{ ',' if not loop.last }}
        {%- endfor %}
        ) as listed (source_file, source_sheet, load_id)
    {%- endif -%}
{%- endmacro %}
