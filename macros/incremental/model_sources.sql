{#- The sources (dicts {'file', 'sheet', 'load_id'}) a model recorded as processed in its
    state (macro model_state, key 'sources'), and the list of `sources` in the form
    comment_model_state records them. -#}
{% macro model_sources(relation) -%}
    {%- set found = [] -%}
    {%- for listed in model_state(relation).get('sources', []) -%}
        {%- do found.append({'file': listed[0], 'sheet': listed[1], 'load_id': listed[2]}) -%}
    {%- endfor -%}
    {{ return(found) }}
{%- endmacro %}

{% macro sources_recorded(sources) -%}
    {%- set listed = [] -%}
    {%- for source in sources -%}
        {%- do listed.append([source.file, source.sheet, source.load_id | int]) -%}
    {%- endfor -%}
    {{ return(listed) }}
{%- endmacro %}
