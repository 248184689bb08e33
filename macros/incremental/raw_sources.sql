{#- The sources the raw tables `relations` hold now (macro raw_table_source), as a list of
    {'file', 'sheet', 'load_id'}; an empty or missing table holds none. -#}
{% macro raw_sources(relations) -%}
    {%- set found = [] -%}
    {%- for relation in relations -%}
        {%- set source = raw_table_source(relation) -%}
        {%- if source is not none -%}
            {%- do found.append(source) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(found) }}
{%- endmacro %}
