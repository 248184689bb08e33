{#- Whether `source` ({'file', 'sheet', 'load_id'}) is one of `sources`. -#}
{% macro source_in(source, sources) -%}
    {%- for other in sources
        if other.file == source.file and other.sheet == source.sheet
        and other.load_id | int == source.load_id | int -%}
        {{ return(true) }}
    {%- endfor -%}
    {{ return(false) }}
{%- endmacro %}
