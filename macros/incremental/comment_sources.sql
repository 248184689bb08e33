{#- The post-hook of a model that keeps the sources it has processed as its table's comment
    (macro commented_sources reads them): `sources` as JSON. -#}
{% macro comment_sources(sources) -%}
    {%- set listed = [] -%}
    {%- for source in sources -%}
        {%- do listed.append([source.file, source.sheet, source.load_id | int]) -%}
    {%- endfor -%}
    comment on table {{ this }} is {{ "'luckygas sources " ~ (tojson(listed)
        | replace("'", "''")) ~ "'" }}
{%- endmacro %}
